/**
 * Requests as Slack sends them to a Bolt HTTP receiver: form-encoded slash commands and
 * `payload=` block_actions, signed with `v0=` HMAC-SHA256 of `v0:{timestamp}:{body}` and the
 * `x-slack-request-timestamp` header; plus forged and stale variants.
 */
import { createHmac } from 'node:crypto';

export function slackSignature(secret: string, timestamp: number, body: string): string {
  return `v0=${createHmac('sha256', secret).update(`v0:${timestamp}:${body}`).digest('hex')}`;
}

export interface SignOptions {
  /** Unix seconds; now by default. */
  timestamp?: number;
  /** Sign with this secret instead (a forgery). */
  signWith?: string;
}

export interface SlackHttpAnswer {
  status: number;
  text: string;
  /** The answer body parsed as JSON, when it is JSON. */
  json?: Record<string, unknown>;
  /** From sending the request to the answer's headers. */
  ms: number;
}

export async function postSigned(
  url: string,
  body: string,
  secret: string,
  options: SignOptions = {},
): Promise<SlackHttpAnswer> {
  const timestamp = options.timestamp ?? Math.floor(Date.now() / 1000);
  const started = performance.now();
  const response = await fetch(url, {
    method: 'POST',
    headers: {
      // Bolt compares the content type exactly: no "; charset=…".
      'content-type': 'application/x-www-form-urlencoded',
      'x-slack-request-timestamp': String(timestamp),
      'x-slack-signature': slackSignature(options.signWith ?? secret, timestamp, body),
    },
    body,
    signal: AbortSignal.timeout(10_000),
  });
  const ms = performance.now() - started;
  const text = await response.text();
  let json: Record<string, unknown> | undefined;
  try {
    json = text ? (JSON.parse(text) as Record<string, unknown>) : undefined;
  } catch {
    json = undefined;
  }
  return { status: response.status, text, ...(json ? { json } : {}), ms };
}

export interface SlashCommandFields {
  text: string;
  userId: string;
  channelId: string;
  responseUrl: string;
  teamId?: string;
  command?: string;
}

export function slashCommandBody(fields: SlashCommandFields): string {
  return new URLSearchParams({
    token: 'deprecated-verification-token',
    team_id: fields.teamId ?? 'T1',
    team_domain: 'lab',
    channel_id: fields.channelId,
    channel_name: 'ops',
    user_id: fields.userId,
    user_name: fields.userId.toLowerCase(),
    command: fields.command ?? '/reboot-cluster',
    text: fields.text,
    api_app_id: 'A1',
    is_enterprise_install: 'false',
    response_url: fields.responseUrl,
    trigger_id: `${Date.now()}.1.abc`,
  }).toString();
}

export interface ButtonClickFields {
  actionId: string;
  value: string;
  userId: string;
  channelId: string;
  messageTs: string;
  responseUrl: string;
  teamId?: string;
}

export function blockActionsBody(fields: ButtonClickFields): string {
  const payload = {
    type: 'block_actions',
    user: {
      id: fields.userId,
      username: fields.userId.toLowerCase(),
      name: fields.userId.toLowerCase(),
      team_id: fields.teamId ?? 'T1',
    },
    api_app_id: 'A1',
    token: 'deprecated-verification-token',
    container: {
      type: 'message',
      message_ts: fields.messageTs,
      channel_id: fields.channelId,
      is_ephemeral: false,
    },
    trigger_id: `${Date.now()}.1.def`,
    team: { id: fields.teamId ?? 'T1', domain: 'lab' },
    enterprise: null,
    is_enterprise_install: false,
    channel: { id: fields.channelId, name: 'ops' },
    message: { type: 'message', ts: fields.messageTs, text: 'plan', user: 'UBOT', blocks: [] },
    response_url: fields.responseUrl,
    actions: [
      {
        type: 'button',
        action_id: fields.actionId,
        block_id: 'root.9.abc',
        text: { type: 'plain_text', text: fields.actionId, emoji: true },
        value: fields.value,
        action_ts: `${Date.now() / 1000}`,
      },
    ],
  };
  return new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
}

/** Sends signed requests to a Bolt HTTP receiver, as Slack would. */
export class SlackRequester {
  constructor(
    readonly eventsUrl: string,
    readonly secret: string,
  ) {}

  command(fields: SlashCommandFields, options?: SignOptions): Promise<SlackHttpAnswer> {
    return postSigned(this.eventsUrl, slashCommandBody(fields), this.secret, options);
  }

  click(fields: ButtonClickFields, options?: SignOptions): Promise<SlackHttpAnswer> {
    return postSigned(this.eventsUrl, blockActionsBody(fields), this.secret, options);
  }
}
