-- wrk's own counters as one JSON line, for bench.py: exact figures rather
-- than the rounded, unit-suffixed ones of its text report. Only done() is
-- defined, so wrk's request and response paths stay those of a run
-- without a script.
done = function(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'BENCH_JSON {"requests": %d, "duration_us": %d, "bytes": %d, "connect": %d, "read": %d, '
      .. '"write": %d, "status": %d, "timeout": %d, "p99_us": %d, "mean_us": %.1f}\n',
      summary.requests, summary.duration, summary.bytes, e.connect, e.read,
      e.write, e.status, e.timeout, latency:percentile(99), latency.mean))
end
