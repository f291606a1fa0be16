# IOPS per workload (clusters) and target (bars) from one charts/*.dat file
# of report.py.  gnuplot -e "dat='X.dat'; out='X'; ttl='...'" chart.gp
# writes X.png and X.svg.  Log scale: the targets differ by 20x and more.
ncol = words(system("head -n1 '" . dat . "'"))
nrow = int(system("tail -n +2 '" . dat . "' | wc -l"))
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set logscale y
set yrange [10:*]
set grid ytics
set ylabel "IOPS (log scale)"
set title ttl noenhanced
set key outside right top noenhanced
set xtics noenhanced rotate by -25
set datafile missing "NaN"
w = 260 + 90 * nrow * (ncol - 1) / 4
w = w < 900 ? 900 : w
do for [fmt in "png svg"] {
	if (fmt eq "png") { set terminal pngcairo size w,480 font "sans,10" }
	if (fmt eq "svg") { set terminal svg size w,480 font "sans,10" }
	set output out . "." . fmt
	plot for [i=2:ncol] dat using i:xtic(1) title columnhead(i)
}
