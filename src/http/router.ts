import type { IncomingMessage, ServerResponse } from 'node:http';

export type Handler = (req: IncomingMessage, res: ServerResponse) => Promise<void> | void;

/** Exact-path routing by method; 404 for unknown paths, 405 for a known path with another method. */
export function route(
  routes: Record<string, Partial<Record<'GET' | 'POST', Handler>>>,
  onError: (error: unknown) => void,
): Handler {
  return async (req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    const methods = routes[path];
    if (!methods) return sendJson(res, 404, { error: 'not_found' });
    const handler = methods[req.method as 'GET' | 'POST'];
    if (!handler) {
      res.setHeader('Allow', Object.keys(methods).join(', '));
      return sendJson(res, 405, { error: 'method_not_allowed' });
    }
    try {
      await handler(req, res);
    } catch (error) {
      if (error instanceof PayloadTooLarge) {
        // The rest of the body is not read: the connection ends with this answer.
        return sendJson(
          res,
          413,
          { error: 'request_too_large', message: error.message },
          { Connection: 'close' },
        );
      }
      onError(error);
      if (!res.headersSent) sendJson(res, 500, { error: 'internal_error' });
      else res.end();
    }
  };
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

/** A request body over the limit of its endpoint; answered 413 by `route`. */
export class PayloadTooLarge extends Error {
  constructor(limit: number, why?: string) {
    super(`the request body is larger than ${limit} bytes${why ? `: ${why}` : ''}`);
  }
}

/**
 * The body as text. Over `limit` bytes it is refused (`why` says what the limit is for): unread
 * when its declared length is over, else as soon as the bytes read are.
 */
export async function readBody(req: IncomingMessage, limit = 1024 * 1024, why?: string): Promise<string> {
  if (Number(req.headers['content-length']) > limit) throw new PayloadTooLarge(limit, why);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new PayloadTooLarge(limit, why);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}
