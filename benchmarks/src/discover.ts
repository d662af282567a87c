import { existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'

/**
 * Scenario files: `benchmarks/scenarios/*.bench.ts` (cross-package) and every
 * workspace member's `bench/*.bench.ts` (`packages/*`, `examples/*`).
 */
export function discoverScenarioFiles (root: string): string[] {
  const dirs = [join(root, 'benchmarks', 'scenarios')]
  for (const group of ['packages', 'examples']) {
    const dir = join(root, group)
    if (!existsSync(dir)) continue
    for (const member of readdirSync(dir).sort()) dirs.push(join(dir, member, 'bench'))
  }
  return dirs
    .filter((dir) => existsSync(dir))
    .flatMap((dir) => readdirSync(dir).filter((f) => f.endsWith('.bench.ts')).sort().map((f) => join(dir, f)))
}
