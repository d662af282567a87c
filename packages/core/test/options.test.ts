import t from 'tap'
import { closest, rejectUnknownOptions } from '../src/index.js'

const known = { max: true, min: true, replicaMax: true, keyPrefix: true, acquireTimeoutMs: true } as const
const fail = (name: string, reason: string): Error => new Error(`"${name}" ${reason}`)

t.test('an unknown option names itself and the option it is a typo of', async (t) => {
  t.throws(() => rejectUnknownOptions({ maxx: 1 }, known, fail), { message: '"maxx" is unknown; did you mean "max"?' })
  t.throws(() => rejectUnknownOptions({ keyprefix: 'a' }, known, fail), { message: /"keyprefix" is unknown; did you mean "keyPrefix"\?/ })
  t.throws(() => rejectUnknownOptions({ replicasMax: 1 }, known, fail), { message: /did you mean "replicaMax"/ })
  t.throws(() => rejectUnknownOptions({ aquireTimeoutMs: 1 }, known, fail), { message: /did you mean "acquireTimeoutMs"/ })
})

t.test('a name close to nothing lists the options', async (t) => {
  t.throws(() => rejectUnknownOptions({ connectionString: 'x' }, known, fail), {
    message: '"connectionString" is unknown; the options are max, min, replicaMax, keyPrefix, acquireTimeoutMs'
  })
})

t.test('a renamed option gets its own reason; a nested one its path', async (t) => {
  t.throws(() => rejectUnknownOptions({ timeWindow: 1 }, known, fail, { timeWindow: 'the window is `window`' }), {
    message: '"timeWindow" is unknown; the window is `window`'
  })
  t.throws(() => rejectUnknownOptions({ mx: 1 }, known, fail, {}, 'cookie'), { message: /^"cookie\.mx" is unknown; did you mean "max"\?/ })
})

t.test('known options, inherited keys and non-objects pass', async (t) => {
  t.doesNotThrow(() => rejectUnknownOptions({ max: 1, min: 0 }, known, fail))
  t.doesNotThrow(() => rejectUnknownOptions(Object.create({ maxx: 1 }), known, fail))
  for (const value of [undefined, null, false, 3, 'x']) t.doesNotThrow(() => rejectUnknownOptions(value, known, fail))
  // `constructor`, `toString`: not options just because every object has them
  t.throws(() => rejectUnknownOptions({ toString: 1 }, known, fail), { message: /"toString" is unknown/ })
})

t.test('closest(): case, swaps and a bound of a third of the name', async (t) => {
  t.equal(closest('MAX', ['max', 'min']), 'max')
  t.equal(closest('mxa', ['max', 'min']), 'max', 'a swap of neighbours costs one')
  t.equal(closest('foo', ['max', 'min']), undefined)
  t.equal(closest('ab', ['xy']), undefined)
})
