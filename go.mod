module github.com/carrel-lib/carrel

go 1.26.0

require (
	filippo.io/age v1.3.2 // indirect
	filippo.io/hpke v0.4.0 // indirect
	github.com/BurntSushi/toml v1.6.0 // indirect
	github.com/Microsoft/go-winio v0.6.2 // indirect
	github.com/fsnotify/fsnotify v1.9.0 // indirect
	github.com/gopacket/gopacket v1.7.7 // indirect
	github.com/kardianos/service v1.3.0 // indirect
	github.com/mattn/go-sqlite3 v1.14.53 // indirect
	github.com/stretchr/testify v1.12.1 // indirect
	golang.org/x/crypto v0.55.0 // indirect
	golang.org/x/mod v0.42.0 // indirect
	golang.org/x/net v0.57.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
)
