# Sourced by the benchmark scripts: the date, machine and torch lines every run.txt carries.
# Usage: provenance_lines PYTHON
provenance_lines() {
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "machine: $(nproc) CPU cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -m), load $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "torch: $("$1" -c 'import torch; print(torch.__version__, "cuda" if torch.cuda.is_available() else "cpu")')"
}
