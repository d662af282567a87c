export { defineScenario } from './types.js'
export type {
  BenchRequest, Check, CheckResult, CustomResult, CustomRow, CustomScenario, HttpScenario, HttpVariant,
  OpsScenario, OpsVariant, RunContext, Scenario, ScenarioResult, Timing, VariantResult
} from './types.js'
export { runScenario, QUICK, FULL } from './runner.js'
export { renderResult, writeResults } from './report.js'
export { startServer, type ServerHandle } from './child.js'
export { median, mean } from './stats.js'
