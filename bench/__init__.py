"""Linli's benchmark suite: `python -m bench` (or `make bench`) measures each figure beside its floor.

A floor is the same work done the least expensive way on the same machine in the same run: the
same row writes through the bare database driver, a bare Flask route under the same gunicorn, an
echo bot on the same fake Bot API server, the configured SMS rate. Figures are printed as ratios
to their floors, so a slower or busier machine changes the ratios much less than the raw numbers.

Everything runs on loopback (PostgreSQL on a Unix socket), with bounded counts and times; every
process the suite starts is stopped on the way out. One module per section; see BENCHMARKS.md.
"""
