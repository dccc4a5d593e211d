//go:build race

package lambdart

// raceEnabled: the race detector slows everything several times over, so
// latency bounds are not checked under it.
const raceEnabled = true
