// Preloaded into the broker by bench/heap.ts --rss-only: prints process.memoryUsage() and the V8 heap spaces on SIGUSR2.
const v8 = require('node:v8');
process.on('SIGUSR2', () => {
  const mu = process.memoryUsage();
  const mb = (x) => (x / 2 ** 20).toFixed(1);
  const spaces = v8
    .getHeapSpaceStatistics()
    .map((s) => `${s.space_name}=${mb(s.space_size)}/${mb(s.space_used_size)}`)
    .join(' ');
  process.stderr.write(
    `MEM rss=${mb(mu.rss)} heapTotal=${mb(mu.heapTotal)} heapUsed=${mb(mu.heapUsed)} external=${mb(mu.external)} ab=${mb(mu.arrayBuffers)} | ${spaces}\n`,
  );
  if (process.env.MEM_GC && global.gc) {
    global.gc();
    const m2 = process.memoryUsage();
    process.stderr.write(`MEM-after-gc rss=${mb(m2.rss)} heapTotal=${mb(m2.heapTotal)} heapUsed=${mb(m2.heapUsed)}\n`);
  }
});
