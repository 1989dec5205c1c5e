/**
 * XAPI spoken with the plain npm `xmlrpc` client instead of our transport: proves the lab answers any
 * standard XML-RPC client the way xapi does, and lets tests act on the lab as an outside operator would.
 */
import xmlrpc from 'xmlrpc';

type ClientOptions = Parameters<typeof xmlrpc.createClient>[0];

export interface XapiEnvelope {
  Status: 'Success' | 'Failure';
  Value?: unknown;
  ErrorDescription?: string[];
}

/** A `Status: Failure` answer, with the ErrorDescription exactly as sent. */
export class RawXapiFailure extends Error {
  constructor(
    readonly method: string,
    readonly description: string[],
  ) {
    super(`${method}: ${description.join(' ')}`);
  }

  get xapiCode(): string | undefined {
    return this.description[0];
  }
}

/** One XML-RPC call; rejects on transport errors and after `timeoutMs`, resolves with the raw envelope. */
export function rawXapiCall(
  address: string,
  port: number,
  method: string,
  params: unknown[],
  timeoutMs = 5_000,
): Promise<XapiEnvelope> {
  // A fresh connection per call: a pooled socket to a host that rebooted would fail for the wrong reason.
  // `agent` goes through to http.request; the package's types do not list it.
  const options = { host: address, port, path: '/', agent: false } as ClientOptions;
  const client = xmlrpc.createClient(options);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${method} on ${address}:${port}: no answer within ${timeoutMs} ms`)),
      timeoutMs,
    );
    client.methodCall(method, params, (error, value) => {
      clearTimeout(timer);
      if (error) reject(error);
      else resolve(value as XapiEnvelope);
    });
  });
}

/** The envelope's Value, or a RawXapiFailure. */
export async function rawXapiValue(
  address: string,
  port: number,
  method: string,
  params: unknown[],
): Promise<unknown> {
  const envelope = await rawXapiCall(address, port, method, params);
  if (envelope.Status === 'Success') return envelope.Value;
  throw new RawXapiFailure(method, envelope.ErrorDescription ?? []);
}

/** A session at a known master, with no retries, redirects or re-logins: what a test does is what xapi sees. */
export class RawXapiSession {
  private constructor(
    readonly address: string,
    readonly port: number,
    readonly session: string,
  ) {}

  static async login(
    address: string,
    port: number,
    credentials: { username: string; password: string },
  ): Promise<RawXapiSession> {
    const session = await rawXapiValue(address, port, 'session.login_with_password', [
      credentials.username,
      credentials.password,
    ]);
    if (typeof session !== 'string') throw new Error(`login on ${address}: no session ref`);
    return new RawXapiSession(address, port, session);
  }

  call<T = unknown>(method: string, ...params: unknown[]): Promise<T> {
    return rawXapiValue(this.address, this.port, method, [this.session, ...params]) as Promise<T>;
  }

  /** The failure a call must end with; fails the test's await if the call succeeds. */
  async failure(method: string, ...params: unknown[]): Promise<string[]> {
    try {
      await this.call(method, ...params);
    } catch (error) {
      if (error instanceof RawXapiFailure) return error.description;
      throw error;
    }
    throw new Error(`${method} succeeded, a failure was expected`);
  }
}
