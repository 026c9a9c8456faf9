module github.com/carrel-lib/carrel

go 1.26
