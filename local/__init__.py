"""Local development stack: emulators, bootstrap, runners. Never shipped to Lambda."""
