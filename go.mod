module github.com/loophttp/loophttp

go 1.26
