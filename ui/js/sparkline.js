// Latency sparkline as SVG points (pure; no DOM).

/** Polyline points for `samples` in a `width`×`height` box (2 px padding); "" for none. */
export function sparkPoints(samples, width = 300, height = 60) {
  if (!samples || samples.length === 0) return "";
  const max = Math.max(...samples, 1);
  const min = Math.min(...samples, 0);
  const span = max - min || 1;
  const step = samples.length > 1 ? (width - 4) / (samples.length - 1) : 0;
  return samples
    .map((v, i) => {
      const x = 2 + i * step;
      const y = height - 2 - ((v - min) / span) * (height - 4);
      return `${x.toFixed(1)},${y.toFixed(1)}`;
    })
    .join(" ");
}
