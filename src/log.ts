import winston from 'winston';

export type Logger = winston.Logger;

/**
 * One JSON object per line on stdout, Kubernetes style: a capitalized, past-tense message that
 * names the object ("Revoked grant"), with structured key/values beside it.
 */
export function createLogger(
  level = process.env.LOG_LEVEL ?? 'info',
  stream?: NodeJS.WritableStream,
): Logger {
  return winston.createLogger({
    level,
    format: winston.format.combine(
      winston.format.timestamp({ alias: 'ts' }),
      winston.format((info) => {
        delete info.timestamp;
        return info;
      })(),
      winston.format.json(),
    ),
    transports: [stream ? new winston.transports.Stream({ stream }) : new winston.transports.Console()],
  });
}
