import neostandard from 'neostandard'

export default [
  ...neostandard({
    ts: true,
    ignores: ['**/dist/**', '**/.bench-*.mjs', '**/node_modules/**', '**/.tap/**', 'benchmarks/results/**']
  })
]
