/**
 * Monthly cost of a sizing, from the price catalogue (prices.json), and the
 * seed's own estimates to set beside it. Pure: tested in test/model.test.ts.
 */
import type { NodeType, Sizing } from './model.js'

export interface Prices {
  region: string
  asOf: string
  hoursPerMonth: number
  ec2: NodeType[]
  rdsPostgres: NodeType[]
  rdsStorageUsdPerGbMonth: { value: number }
  elasticache: NodeType[]
  alb: { usdPerHour: number, usdPerLcuHour: number }
  cloudfront: { usdPerGb: number, usdPer10kHttpsRequests: number }
  external: { usdPerQuoteCall: number, usdPerInsightCall: number }
}

export const COST_PARTS = ['app', 'database', 'redis', 'loadBalancer', 'cdn', 'externalApis'] as const
export type CostPart = typeof COST_PARTS[number]
export type Cost = Record<CostPart, number> & { total: number }

/** The app host type: one Node process per vCPU. */
export const APP_HOST = 'c7g.large'
/** Database storage assumed per daily user (transactions, indexes, WAL headroom), GB; 20 GB minimum. */
export const STORAGE_GB_PER_USER = 0.0005

function find (list: NodeType[], type: string): NodeType {
  const t = list.find((x) => x.type === type)
  if (!t) throw new Error(`prices.json has no ${type}`)
  return t
}

/**
 * Provider calls: `quotePerApiReq` and `insightPerApiReq` per API request, quotes at most
 * `quoteCallsMaxPerS` for the whole fleet (a shared cache refreshes each symbol once per TTL).
 */
export interface Calls { quotePerApiReq: number, insightPerApiReq: number, quoteCallsMaxPerS: number }

export function monthlyCost (s: Sizing, p: Prices, calls: Calls): Cost {
  const h = p.hoursPerMonth
  const app = s.appHosts * find(p.ec2, APP_HOST).usdPerHour * h
  const primary = find(p.rdsPostgres, s.pgPrimary).usdPerHour * h
  const storage = Math.max(20, s.users * STORAGE_GB_PER_USER) * p.rdsStorageUsdPerGbMonth.value
  const database = primary * (s.pgMultiAz ? 2 : 1) + primary * s.pgReplicas + storage * (1 + s.pgReplicas)
  const redis = s.redisShards * (1 + s.redisReplicasPerShard) * find(p.elasticache, s.redisNode).usdPerHour * h
  const loadBalancer = p.alb.usdPerHour * h + s.lbAvgLcu * p.alb.usdPerLcuHour * h
  const cdn = s.cdnGbMonth * p.cloudfront.usdPerGb + (s.monthlyStaticRequests / 10_000) * p.cloudfront.usdPer10kHttpsRequests
  const quoteCalls = Math.min(s.monthlyApiRequests * calls.quotePerApiReq, calls.quoteCallsMaxPerS * 30 * 86_400)
  const externalApis = quoteCalls * p.external.usdPerQuoteCall + s.monthlyApiRequests * calls.insightPerApiReq * p.external.usdPerInsightCall
  const parts = { app, database, redis, loadBalancer, cdn, externalApis }
  return { ...parts, total: COST_PARTS.reduce((a, k) => a + parts[k], 0) }
}

/** The seed's estimates (SEED.md "Cost estimation"), USD per month, as [low, high]. */
export interface SeedCost { users: number, label: string, parts: Partial<Record<CostPart | 'monitoring', [number, number]>>, total: [number, number] }

export const SEED_COSTS: SeedCost[] = [
  {
    users: 10_000,
    label: 'Current setup (the seed says it serves 10,000–15,000 daily users)',
    parts: { database: [50, 100], app: [50, 100], externalApis: [100, 200] },
    total: [200, 300]
  },
  {
    users: 100_000,
    label: '100K users',
    parts: { loadBalancer: [200, 300], app: [500, 1000], database: [500, 1000], redis: [200, 400], cdn: [100, 200], monitoring: [200, 400], externalApis: [500, 1000] },
    total: [2000, 4000]
  }
]
