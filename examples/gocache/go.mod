module memrun/examples/gocache

go 1.19

require memrun/memlimit v0.0.0

replace memrun/memlimit => ../../limiter/go
