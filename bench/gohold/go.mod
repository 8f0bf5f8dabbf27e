module memrun/bench/gohold

go 1.19
