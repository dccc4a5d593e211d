package wsgirt

import _ "embed"

// shimSource is the Python side, run as `python -c shimSource`.
//
//go:embed shim.py
var shimSource string
