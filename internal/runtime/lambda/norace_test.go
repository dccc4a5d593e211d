//go:build !race

package lambdart

const raceEnabled = false
