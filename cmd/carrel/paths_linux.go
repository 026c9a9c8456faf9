package main

func defaultConfigPath() string { return "/etc/carrel/carrel.toml" }
