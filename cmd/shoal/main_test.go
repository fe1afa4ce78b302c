package main

import (
	"os"
	"testing"
)

// cliEnv makes the test binary run as the shoal command itself, so that tests can start
// it as a separate process with its own working directory (see shoalIn).
const cliEnv = "SHOAL_TEST_RUN_AS_CLI"

func TestMain(m *testing.M) {
	if os.Getenv(cliEnv) == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}
