# IOPS against CPU time per I/O from one charts/*.xy file of report.py: a
# point per workload, a colour per target (the file's blocks).
#   gnuplot -e "dat='X.xy'; out='X-cpu'; ttl='...'" chart-cpu.gp
# writes X-cpu.png and X-cpu.svg.  Up and to the left is better: more I/O
# for less CPU.  Log scales: targets and workloads differ by 20x and more.
nblk = int(system("grep -c '^\"' '" . dat . "'"))
set logscale xy
set grid xtics ytics
set xlabel "CPU us per I/O (guest sys + irq + softirq, log scale)"
set ylabel "IOPS (log scale)"
set title ttl noenhanced
set key outside right top noenhanced
set datafile missing "NaN"
do for [fmt in "png svg"] {
	if (fmt eq "png") { set terminal pngcairo size 900,560 font "sans,10" }
	if (fmt eq "svg") { set terminal svg size 900,560 font "sans,10" }
	set output out . "." . fmt
	plot for [i=0:nblk-1] dat index i using 1:2 with points pointsize 1.3 title columnheader(1)
}
