package spec

// PeakRSSOf lets the external tests measure a child process's peak memory too.
var PeakRSSOf = peakRSSOf

// VmHWM lets the external tests' child processes report their peak memory.
var VmHWM = vmHWM
