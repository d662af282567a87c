import t from 'tap'
import { completeSeconds, MIN_SECOND_MS, renderSvg } from '../bench/chart.js'

const steady = (n: number) => Array.from({ length: n }, (_, i) => 10 + (i % 5))

t.test('the load report\'s chart: the partial last window (autocannon\'s tick at the stop) is not a second', async (t) => {
  // 3 whole seconds at 200 responses each, then the stop 120 ms after the last tick
  const windows = [{ ms: 1000, times: steady(200) }, { ms: 1003, times: steady(200) }, { ms: 998, times: steady(200) }, { ms: 120, times: steady(24) }]
  const seconds = completeSeconds(windows)
  t.same(seconds.map((s) => s.t), [1, 2, 3], 'three seconds, numbered from 1')
  t.ok(seconds.every((s) => s.rps >= 199 && s.rps <= 201), `no drop at the end: ${seconds.map((s) => s.rps).join(', ')}`)
  t.equal(seconds[0]!.p50, 12)
  t.equal(completeSeconds([{ ms: MIN_SECOND_MS, times: [1] }]).length, 1, 'a window of MIN_SECOND_MS counts')

  // the drawn rate line: its last point is as high as the others
  const svg = renderSvg(seconds)
  const line = /<polyline[^>]*points="([^"]+)"/.exec(svg)?.[1]
  t.ok(line, 'the rate is drawn')
  const ys = (line ?? '').split(' ').map((p) => Number(p.split(',')[1]))
  t.equal(ys.length, 3)
  t.ok(Math.max(...ys) - Math.min(...ys) < 2, `a flat line, not a drop to zero (${ys.join(', ')})`)
})
