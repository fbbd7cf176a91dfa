"""System tests: pivox installed by install.sh and run under a real systemd in a container."""
