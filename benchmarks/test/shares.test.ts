import t from 'tap'
import { shares } from '../src/runner.js'

const trace = (n: number) => Array.from({ length: n }, (_, i) => ({ path: `/${i}` }))

t.test('a long list is split: every entry goes to exactly one connection, neighbours to neighbouring connections', async (t) => {
  const split = shares(trace(1_000), 50)
  t.equal(split.length, 50)
  t.same(split.map((s) => s.length), split.map(() => 20), 'equal shares')
  const sent = split.flatMap((s) => s.map((r) => r.path)).sort()
  t.same(sent, trace(1_000).map((r) => r.path).sort(), 'the whole list, once')
  t.same(split[0]!.slice(0, 2).map((r) => r.path), ['/0', '/50'])
  t.same(split.map((s) => s[0]!.path).slice(0, 3), ['/0', '/1', '/2'], 'the first requests in flight are the list\'s first entries')
  t.equal(split[0]![0]!.method, 'GET', 'GET unless the entry says otherwise')
})

t.test('a short list is sent whole by every connection, each from its own entry', async (t) => {
  const split = shares(trace(3), 4)
  t.same(split.map((s) => s.map((r) => r.path)), [['/0', '/1', '/2'], ['/1', '/2', '/0'], ['/2', '/0', '/1'], ['/0', '/1', '/2']])
  t.same(shares([{ path: '/' }], 2).map((s) => s.length), [1, 1], 'one request: every connection sends it')
})

t.test('entries are fresh objects per call (autocannon writes its built buffer onto them)', async (t) => {
  const list = trace(200)
  const a = shares(list, 10)
  const b = shares(list, 10)
  t.not(a[0]![0], b[0]![0])
  t.not(a[0]![0], list[0])
})
