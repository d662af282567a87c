import { Writable } from 'node:stream'

/** One parsed pino line: `level`, `msg`, and whatever the logger added (`reqId`, `err`, ...). */
export interface LogLine { level: number, msg: string, [key: string]: any }

/**
 * Log lines of an app, parsed: give `stream` to the logger
 * (`Fastify({ logger: { level: 'info', stream: logs.stream } })`) and read
 * `lines` (or the lines of one request with `of(reqId)`).
 */
export class LogLines {
  readonly lines: LogLine[] = []
  readonly stream = new Writable({
    write: (chunk: Buffer, _encoding, done) => {
      for (const line of chunk.toString('utf8').split('\n')) if (line) this.lines.push(JSON.parse(line) as LogLine)
      done()
    }
  })

  /** the lines logged for the request with this id */
  of (reqId: string): LogLine[] {
    return this.lines.filter((l) => l.reqId === reqId)
  }
}
