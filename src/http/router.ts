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

export async function readBody(req: IncomingMessage, limit = 1024 * 1024): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw Object.assign(new Error('request body too large'), { status: 413 });
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}
