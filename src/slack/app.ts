/**
 * The Slack side (DESIGN.md section 1): `/reboot-cluster` and the run buttons, on Bolt (HTTP
 * receiver at /slack/events, or Socket Mode). Slack is a thin layer: parse, authorize, plan, post,
 * and move the run record with compare-and-set transitions; the worker does the rest.
 * Every request is acked at once (slow work afterwards), every click is re-checked on the server
 * (the confirm dialog proves nothing), and every request, approval, refusal and click is audited.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { App, type BlockAction, type ButtonAction, type RespondArguments, type RespondFn } from '@slack/bolt';
import type { BotConfig } from '../bot-config.js';
import type { Finding, PlanSummary } from '../engine/events.js';
import { describeError } from '../errors.js';
import type { Logger } from '../log.js';
import {
  ACTIVE_STATES,
  type AuditEntry,
  type AuditLog,
  type RunOptions,
  type RunQueue,
  type RunRecord,
  type RunState,
  type RunStore,
} from '../queue/contracts.js';
import { Authorizer, type ControlAction, SlackUsergroupDirectory } from './authorization.js';
import {
  actorNotice,
  busyMessage,
  type EphemeralMessage,
  infoMessage,
  RUN_ACTION_IDS,
  type RunActionId,
  refusalMarkup,
  refusalMessage,
  rootMessage,
  type StatusEntry,
  statusListing,
  usageMessage,
} from './blocks.js';
import { parseSlashCommand } from './command-grammar.js';
import {
  chatApiOf,
  createSlackWebClient,
  SLACK_REQUEST_TIMEOUT_MS,
  type SlackCallObserver,
  SlackWriter,
  slackLoggerFrom,
} from './slack-writer.js';

/** The part of Bolt's SocketModeReceiver that tells whether the websocket is open. */
interface SocketModeReceiverView {
  client?: { websocket?: { isActive(): boolean } };
}

export const SLASH_COMMAND = '/reboot-cluster';
export const EVENTS_PATH = '/slack/events';

export interface PlanRequest {
  cluster: string;
  exec: boolean;
  options: RunOptions;
}

export interface PlanResult {
  /** False when a blocker refuses `--exec`. */
  ok: boolean;
  findings: Finding[];
  plan?: PlanSummary;
}

export type PlanFunction = (request: PlanRequest) => Promise<PlanResult>;

export interface SlackAppDeps {
  config: BotConfig;
  runStore: RunStore;
  audit: AuditLog;
  queue: RunQueue;
  /** The engine's pre-flight (read-only): injected by main, backed by a lab in tests. */
  plan: PlanFunction;
  /** Finish: the run's checkpoint is no longer needed once a human put the cluster back. */
  clearCheckpoint(cluster: string): Promise<void>;
  logger: Logger;
  /** HTTP mode: where to listen; `config.port` on all interfaces by default. */
  listen?: { port: number; host?: string };
  /** The clock approvals expire by (tests move it). */
  now?: () => number;
  /** How often the sweeper looks for expired approvals. */
  sweepIntervalMs?: number;
  /** Spacing of Slack calls per channel (Slack allows about one post a second). */
  minSlackIntervalMs?: number;
  /** Told the outcome of each Web API call of the thread writer (metrics, health). */
  slackObserver?: SlackCallObserver;
  /** HTTP mode: GET routes served next to /slack/events (health, metrics); a bare /healthz otherwise. */
  httpRoutes?: ReadonlyArray<{
    path: string;
    handler(request: IncomingMessage, response: ServerResponse): void;
  }>;
}

export interface SlackBot {
  readonly app: App;
  readonly writer: SlackWriter;
  /** Starts the receiver and the approval sweeper; HTTP mode resolves with the bound port. */
  start(): Promise<{ port?: number }>;
  /** Stops receiving and sweeping, sends what is queued for Slack (up to `flushMs`). */
  stop(flushMs?: number): Promise<void>;
  /** Marks approvals past their expiry as expired and updates their messages; returns how many. */
  sweepExpiredApprovals(): Promise<number>;
  /** Whether Slack's requests can reach this bot: HTTP server listening, or Socket Mode connected. */
  receiverStatus(): { ok: boolean; detail: string };
}

const RESPOND_TIMEOUT_MS = 10_000;
const STATUS_RUNS = 15;
const SWEEP_SCAN = 200;

export function createSlackApp(deps: SlackAppDeps): SlackBot {
  return new SlackBotImpl(deps);
}

class SlackBotImpl implements SlackBot {
  readonly app: App;
  readonly writer: SlackWriter;
  readonly #authorizer: Authorizer;
  readonly #api: ReturnType<typeof createSlackWebClient>;
  readonly #permalinks = new Map<string, string>();
  readonly #socketMode: boolean;
  #sweeper: NodeJS.Timeout | undefined;
  #sweeping = false;
  #server: Server | undefined;

  constructor(private readonly deps: SlackAppDeps) {
    const { config, logger } = deps;
    this.#api = createSlackWebClient(config.slack, { logger });
    this.writer = new SlackWriter({
      api: chatApiOf(this.#api),
      retryMs: config.slack.retryMs,
      minIntervalMs: deps.minSlackIntervalMs,
      observer: deps.slackObserver,
      logger,
    });
    this.#authorizer = new Authorizer(config.access, new SlackUsergroupDirectory(this.#api));
    this.#socketMode = config.slack.appToken !== undefined;
    if (!this.#socketMode && !config.slack.signingSecret) {
      throw new Error('SLACK_SIGNING_SECRET or SLACK_APP_TOKEN is required to receive Slack requests');
    }
    const botToken = config.slack.botToken;
    this.app = new App({
      ...(this.#socketMode
        ? { socketMode: true, appToken: config.slack.appToken }
        : {
            signingSecret: config.slack.signingSecret,
            endpoints: EVENTS_PATH,
            customRoutes: deps.httpRoutes?.map((route) => ({ ...route, method: ['GET'] })) ?? [
              {
                path: '/healthz',
                method: ['GET'],
                handler: (_request, response) => {
                  response.writeHead(200, { 'content-type': 'text/plain' });
                  response.end('ok');
                },
              },
            ],
          }),
      // One workspace, one bot token: no `auth.test` round trip at start or per request.
      authorize: async () => ({ botToken }),
      clientOptions: {
        ...(config.slack.apiUrl ? { slackApiUrl: config.slack.apiUrl } : {}),
        retryConfig: { retries: 0 },
        timeout: SLACK_REQUEST_TIMEOUT_MS,
      },
      logger: slackLoggerFrom(logger),
      processBeforeResponse: false,
    });
    this.app.error(async (error) => {
      logger.error({ error: describeError(error) }, 'Slack request handling failed');
    });
    this.#registerCommand();
    this.#registerButtons();
  }

  async start(): Promise<{ port?: number }> {
    const started = this.#socketMode
      ? await this.app.start()
      : await this.app.start({
          port: this.deps.listen?.port ?? this.deps.config.port,
          host: this.deps.listen?.host,
        });
    this.#startSweeper();
    if (this.#socketMode) return {};
    this.#server = started as Server;
    const address = this.#server.address();
    return { port: typeof address === 'object' && address ? address.port : undefined };
  }

  receiverStatus(): { ok: boolean; detail: string } {
    if (!this.#socketMode) {
      const listening = this.#server?.listening ?? false;
      return { ok: listening, detail: listening ? 'HTTP receiver listening' : 'HTTP receiver not listening' };
    }
    // Bolt keeps its Socket Mode receiver private; its client's websocket says whether Slack is connected.
    const receiver = (this.app as unknown as { receiver?: SocketModeReceiverView }).receiver;
    const connected = receiver?.client?.websocket?.isActive() ?? false;
    return { ok: connected, detail: connected ? 'Socket Mode connected' : 'Socket Mode not connected' };
  }

  async stop(flushMs = 5_000): Promise<void> {
    if (this.#sweeper) clearInterval(this.#sweeper);
    this.#sweeper = undefined;
    await this.app
      .stop()
      .catch((error) => this.deps.logger.warn({ error: describeError(error) }, 'stop failed'));
    await this.writer.flush(flushMs);
    this.writer.close();
  }

  // -------------------------------------------------------------------------------------------
  // The slash command

  #registerCommand(): void {
    this.app.command(SLASH_COMMAND, async ({ command, ack, respond }) => {
      const parsed = parseSlashCommand(command.text ?? '');
      const userId = command.user_id;
      switch (parsed.kind) {
        case 'error':
          // Nothing stored, nothing posted (I8): the usage goes back in the ack itself.
          await ack(usageMessage(parsed.message));
          return;
        case 'help':
          await ack(usageMessage());
          return;
        case 'status':
          await ack();
          await this.#guarded(respond, () => this.#status(respond, parsed.cluster));
          return;
        case 'run': {
          const channel = this.#authorizer.channelAllowed(command.channel_id);
          if (!channel.allowed) {
            await ack(refusalMarkup(channel.reason));
            await this.#audit({
              actor: userId,
              cluster: parsed.cluster,
              action: 'refusal',
              detail: { reason: channel.reason, channel: command.channel_id, text: command.text },
            });
            return;
          }
          await ack(infoMessage(`Checking ${parsed.cluster}…`));
          await this.#guarded(respond, () =>
            this.#request(respond, {
              userId,
              teamId: command.team_id,
              channel: command.channel_id,
              text: command.text,
              request: { cluster: parsed.cluster, exec: parsed.exec, options: parsed.options },
            }),
          );
        }
      }
    });
  }

  async #request(
    respond: RespondFn,
    input: { userId: string; teamId?: string; channel: string; text: string; request: PlanRequest },
  ): Promise<void> {
    const { userId, channel, request } = input;
    const { cluster } = request;
    const decision = await this.#authorizer.canRequest(userId, channel);
    if (!decision.allowed) {
      await this.#audit({
        actor: userId,
        cluster,
        action: 'refusal',
        detail: { reason: decision.reason, text: input.text },
      });
      await this.#reply(respond, refusalMessage(decision.reason), true);
      return;
    }
    const active = await this.deps.runStore.activeRun(cluster);
    if (active) {
      await this.#refuseBusy(respond, userId, active, input.text);
      return;
    }

    const run: RunRecord = {
      runId: randomUUID(),
      cluster,
      exec: request.exec,
      options: request.options,
      state: 'planning',
      requestedBy: userId,
      ...(input.teamId ? { teamId: input.teamId } : {}),
      channel,
      createdAt: this.#nowIso(),
      hostsTotal: 0,
      hostsDone: 0,
    };
    await this.deps.runStore.create(run);
    await this.#audit({
      runId: run.runId,
      cluster,
      actor: userId,
      action: 'request',
      detail: { exec: run.exec, options: run.options, channel, text: input.text },
    });
    // `activeRun` then `create` is not atomic: of two requests racing, the older one wins.
    const rival = await this.#olderRival(run);
    if (rival) {
      await this.deps.runStore.transition(run.runId, ['planning'], 'refused', {
        result: 'Another request for this cluster came first.',
        finishedAt: this.#nowIso(),
      });
      await this.#refuseBusy(respond, userId, rival, input.text, run.runId);
      return;
    }

    const result = await this.#plan(request);
    const blockers = result.findings.filter((f) => f.severity === 'blocker').length;
    const next: RunState = !request.exec ? 'dry_run' : result.ok ? 'awaiting_approval' : 'refused';
    const moved = await this.deps.runStore.transition(run.runId, ['planning'], next, {
      ...(result.plan ? { plan: result.plan } : {}),
      findings: result.findings,
      hostsTotal: result.plan?.hosts.length ?? 0,
      ...(next === 'awaiting_approval'
        ? { approvalExpiresAt: new Date(this.#now() + this.deps.config.approvalTtlMs).toISOString() }
        : { finishedAt: this.#nowIso() }),
      ...(next === 'refused'
        ? { result: `Refused by the pre-flight checks: ${blockers} blocker(s) below. Nothing was changed.` }
        : {}),
    });
    if (!moved.ok) {
      this.deps.logger.warn({ runId: run.runId, state: moved.record?.state }, 'run changed while planning');
      return;
    }

    const posted = this.writer.channel(channel).post(rootMessage(moved.record));
    const ts = await posted.ts;
    if (!ts) {
      const reason = `I could not post the plan in this channel (${posted.error ?? 'unknown error'}). Invite me to the channel and try again.`;
      if (next === 'awaiting_approval') {
        await this.deps.runStore.transition(run.runId, ['awaiting_approval'], 'cancelled', {
          result: reason,
          finishedAt: this.#nowIso(),
        });
      }
      await this.#audit({
        runId: run.runId,
        cluster,
        actor: 'system',
        action: 'plan_post_failed',
        detail: { error: posted.error },
      });
      await this.#reply(respond, refusalMessage(reason), true);
      return;
    }
    await this.deps.runStore.update(run.runId, { messageTs: ts });
    await this.#audit({
      runId: run.runId,
      cluster,
      actor: 'system',
      action: 'plan_posted',
      detail: { state: next, messageTs: ts, channel, blockers, hosts: result.plan?.hosts.length ?? 0 },
    });
    const done: Record<string, string> = {
      dry_run: `Dry run of ${cluster} posted below.`,
      awaiting_approval: `Plan for ${cluster} posted below: a second engineer must approve it.`,
      refused: `${cluster} cannot be rebooted now: see the blockers in the plan below.`,
    };
    await this.#reply(respond, infoMessage(done[next] ?? 'Posted.'), true);
  }

  async #plan(request: PlanRequest): Promise<PlanResult> {
    try {
      return await this.deps.plan(request);
    } catch (error) {
      return {
        ok: false,
        findings: [
          {
            severity: 'blocker',
            code: 'PREFLIGHT_ERROR',
            message: `The pre-flight checks could not finish: ${describeError(error)}`,
          },
        ],
      };
    }
  }

  async #olderRival(run: RunRecord): Promise<RunRecord | undefined> {
    const busy = await this.deps.runStore.busyRuns(run.cluster);
    return busy.find(
      (other) =>
        other.runId !== run.runId &&
        (other.createdAt < run.createdAt || (other.createdAt === run.createdAt && other.runId < run.runId)),
    );
  }

  async #refuseBusy(
    respond: RespondFn,
    userId: string,
    active: RunRecord,
    text: string,
    runId?: string,
  ): Promise<void> {
    await this.#audit({
      ...(runId ? { runId } : {}),
      cluster: active.cluster,
      actor: userId,
      action: 'refusal',
      detail: { reason: 'cluster busy', activeRunId: active.runId, activeState: active.state, text },
    });
    await this.#reply(respond, busyMessage(active, await this.#permalink(active)), true);
  }

  async #status(respond: RespondFn, cluster?: string): Promise<void> {
    const runs = await this.deps.runStore.listRecent({ ...(cluster ? { cluster } : {}), limit: STATUS_RUNS });
    const entries: StatusEntry[] = await Promise.all(
      runs.map(async (run) => {
        const permalink = await this.#permalink(run);
        return permalink ? { run, permalink } : { run };
      }),
    );
    await this.#reply(respond, statusListing(entries, cluster));
  }

  async #permalink(run: RunRecord): Promise<string | undefined> {
    if (!run.messageTs) return undefined;
    const cached = this.#permalinks.get(run.runId);
    if (cached) return cached;
    try {
      const answer = await this.#api.chat.getPermalink({ channel: run.channel, message_ts: run.messageTs });
      if (answer.permalink) this.#permalinks.set(run.runId, answer.permalink);
      return answer.permalink;
    } catch (error) {
      this.deps.logger.info({ runId: run.runId, error: describeError(error) }, 'no permalink');
      return undefined;
    }
  }

  // -------------------------------------------------------------------------------------------
  // The buttons

  #registerButtons(): void {
    const actionIds = new RegExp(`^(${RUN_ACTION_IDS.join('|')})$`);
    this.app.action<BlockAction<ButtonAction>>(
      { type: 'block_actions', action_id: actionIds },
      async (args) => {
        await args.ack();
        const { body, action, respond } = args;
        await this.#guarded(respond, () =>
          this.#click(respond, {
            action: action.action_id as RunActionId,
            // Slack sends a string; anything else (an array would stringify to a real id) is no run.
            runId: typeof action.value === 'string' ? action.value : '',
            userId: body.user.id,
            channel: (body.container?.channel_id as string | undefined) ?? body.channel?.id,
            messageTs: (body.container?.message_ts as string | undefined) ?? body.message?.ts,
          }),
        );
      },
    );
  }

  async #click(
    respond: RespondFn,
    click: { action: RunActionId; runId: string; userId: string; channel?: string; messageTs?: string },
  ): Promise<void> {
    const { action, runId, userId } = click;
    const run = /^[A-Za-z0-9-]{1,64}$/.test(runId) ? await this.deps.runStore.get(runId) : undefined;
    // Audited before answering: once the user sees the refusal, the record has it.
    const refuse = async (reason: string, run?: RunRecord) => {
      await this.#audit({
        ...(run ? { runId: run.runId, cluster: run.cluster } : {}),
        actor: userId,
        action: action === 'approve' ? 'approve_refused' : 'click_refused',
        detail: { button: action, reason, channel: click.channel, messageTs: click.messageTs },
      });
      await this.#reply(respond, refusalMarkup(reason), false);
    };
    if (!run) return refuse('This button does not belong to any run I know.');
    // A click must come from the run's own message: not a copy, not another channel.
    if (run.channel !== click.channel || !run.messageTs || run.messageTs !== click.messageTs) {
      return refuse("This button does not belong to that run's message.", run);
    }
    if (action === 'approve') return this.#approve(run, userId, refuse);
    const decision = await this.#authorizer.canControl(userId, action as ControlAction);
    if (!decision.allowed) return refuse(decision.reason, run);
    switch (action) {
      case 'cancel':
        return this.#cancel(run, userId, refuse);
      case 'abort':
        return this.#abort(run, userId, refuse);
      case 'continue':
        return this.#continue(run, userId, refuse);
      case 'resume':
        return this.#resume(run, userId, refuse);
      case 'finish':
        return this.#finish(run, userId, refuse);
    }
  }

  async #approve(run: RunRecord, userId: string, refuse: Refuse): Promise<void> {
    const decision = await this.#authorizer.canApprove(userId, run);
    if (!decision.allowed) return refuse(decision.reason, run);
    if (run.state !== 'awaiting_approval') return refuse(stateRefusal(run, 'approve'), run);
    if (this.#isExpired(run)) {
      await this.#expire(run);
      return refuse(`This approval expired after ${approvalMinutes(run)} min. Request the run again.`, run);
    }
    const busy = await this.deps.runStore.busyRuns(run.cluster);
    const other = busy.find((r) => r.runId !== run.runId && ACTIVE_STATES.includes(r.state));
    if (other) return refuse(`${run.cluster} already has an active run (${other.runId}).`, run);

    const won = await this.deps.runStore.transition(run.runId, ['awaiting_approval'], 'approved', {
      approvedBy: userId,
      approvedAt: this.#nowIso(),
    });
    // Only the winner of the compare-and-set goes on: double and concurrent clicks end here.
    if (!won.ok) return refuse(won.record ? stateRefusal(won.record, 'approve') : 'This run is gone.', run);
    await this.#audit({ runId: run.runId, cluster: run.cluster, actor: userId, action: 'approve' });
    try {
      await this.deps.queue.enqueue(run.runId);
    } catch (error) {
      const reason = `Approved, but the run could not be queued: ${describeError(error)}`;
      const failed = await this.deps.runStore.transition(run.runId, ['approved'], 'failed', {
        result: reason,
        finishedAt: this.#nowIso(),
      });
      if (failed.ok) this.#updateRoot(failed.record);
      await this.#audit({
        runId: run.runId,
        cluster: run.cluster,
        actor: 'system',
        action: 'enqueue_failed',
        detail: { reason },
      });
      return;
    }
    this.#updateRoot(won.record);
    this.#notice(won.record, ':white_check_mark:', userId, 'approved the run');
  }

  async #cancel(run: RunRecord, userId: string, refuse: Refuse): Promise<void> {
    const moved = await this.deps.runStore.transition(run.runId, ['awaiting_approval'], 'cancelled', {
      result: `Cancelled by <@${userId}>. Nothing was changed.`,
      finishedAt: this.#nowIso(),
    });
    if (!moved.ok) return refuse(stateRefusal(moved.record ?? run, 'cancel'), run);
    await this.#audit({ runId: run.runId, cluster: run.cluster, actor: userId, action: 'cancel' });
    this.#updateRoot(moved.record);
    this.#notice(moved.record, ':x:', userId, 'cancelled the run');
  }

  async #abort(run: RunRecord, userId: string, refuse: Refuse): Promise<void> {
    // Queued and never started: it simply never starts. A run that a worker started before (then
    // suspended, or resumed after needs-attention) has changed the cluster: only a worker can
    // put it back, so it gets the abort flag like a running one.
    const latest = (await this.deps.runStore.get(run.runId)) ?? run;
    const neverStarted = !latest.worker;
    const unstarted = neverStarted
      ? await this.deps.runStore.transition(run.runId, ['approved'], 'aborted', {
          result: `Aborted by <@${userId}> before it started. Nothing was changed.`,
          abortRequestedBy: userId,
          finishedAt: this.#nowIso(),
        })
      : ({ ok: false, record: latest } as const);
    if (unstarted.ok) {
      // The flag too, in case a worker took the job off the queue a moment ago.
      await this.deps.runStore.requestAbort(run.runId, userId);
      await this.#audit({
        runId: run.runId,
        cluster: run.cluster,
        actor: userId,
        action: 'abort',
        detail: { started: false },
      });
      this.#updateRoot(unstarted.record);
      this.#notice(unstarted.record, ':octagonal_sign:', userId, 'aborted the run before it started');
      return;
    }
    const current = (await this.deps.runStore.get(run.runId)) ?? run;
    const startedBefore = current.state === 'approved' && Boolean(current.worker);
    if (current.state !== 'running' && current.state !== 'paused' && !startedBefore)
      return refuse(stateRefusal(current, 'abort'), run);
    if (current.abortRequestedBy) {
      return refuse(`An abort was already requested by <@${current.abortRequestedBy}>.`, run);
    }
    await this.deps.runStore.requestAbort(run.runId, userId);
    await this.#audit({
      runId: run.runId,
      cluster: run.cluster,
      actor: userId,
      action: 'abort',
      detail: { started: true },
    });
    this.#updateRoot((await this.deps.runStore.get(run.runId)) ?? { ...current, abortRequestedBy: userId });
    this.#notice(
      current,
      ':octagonal_sign:',
      userId,
      'requested an abort: the run stops at the next safe point',
    );
  }

  async #continue(run: RunRecord, userId: string, refuse: Refuse): Promise<void> {
    if (!run.options.step || (run.state !== 'paused' && run.state !== 'running')) {
      return refuse(stateRefusal(run, 'continue'), run);
    }
    await this.deps.runStore.grantContinue(run.runId, userId);
    await this.#audit({ runId: run.runId, cluster: run.cluster, actor: userId, action: 'continue' });
    this.#notice(run, ':arrow_forward:', userId, 'let the run continue with the next host');
  }

  async #resume(run: RunRecord, userId: string, refuse: Refuse): Promise<void> {
    const moved = await this.deps.runStore.transition(run.runId, ['needs_attention'], 'approved');
    if (!moved.ok) return refuse(stateRefusal(moved.record ?? run, 'resume'), run);
    await this.#audit({ runId: run.runId, cluster: run.cluster, actor: userId, action: 'resume' });
    try {
      await this.deps.queue.enqueue(run.runId);
    } catch (error) {
      // Back to where it was, so Resume can be clicked again.
      await this.deps.runStore.transition(run.runId, ['approved'], 'needs_attention');
      return refuse(`The run could not be queued: ${describeError(error)}. Try again.`, run);
    }
    this.#updateRoot(moved.record);
    this.#notice(moved.record, ':arrow_forward:', userId, 'resumed the run from its checkpoint');
  }

  async #finish(run: RunRecord, userId: string, refuse: Refuse): Promise<void> {
    // The state first: once it is finished_by_hand no Resume can start, so deleting the
    // checkpoint cannot pull it from under a running worker (I7).
    const moved = await this.deps.runStore.transition(run.runId, ['needs_attention'], 'finished_by_hand', {
      result: `Finished by hand by <@${userId}>.`,
      finishedAt: this.#nowIso(),
    });
    if (!moved.ok) return refuse(stateRefusal(moved.record ?? run, 'finish'), run);
    try {
      await this.deps.clearCheckpoint(run.cluster);
    } catch (error) {
      // Put it back as it was, so Finish (or Resume) can be clicked again.
      await this.deps.runStore.transition(
        run.runId,
        ['finished_by_hand'],
        'needs_attention',
        run.result ? { result: run.result } : {},
      );
      return refuse(
        `The run is not finished: its checkpoint could not be deleted (${describeError(error)}).`,
        run,
      );
    }
    await this.#audit({ runId: run.runId, cluster: run.cluster, actor: userId, action: 'finish' });
    this.#updateRoot(moved.record);
    this.#notice(moved.record, ':wrench:', userId, 'marked the run finished by hand');
  }

  // -------------------------------------------------------------------------------------------
  // Approval expiry

  #startSweeper(): void {
    const interval =
      this.deps.sweepIntervalMs ??
      Math.min(30_000, Math.max(1_000, Math.floor(this.deps.config.approvalTtlMs / 10)));
    this.#sweeper = setInterval(() => {
      void this.sweepExpiredApprovals().catch((error) =>
        this.deps.logger.warn({ error: describeError(error) }, 'approval sweep failed'),
      );
    }, interval);
    this.#sweeper.unref();
  }

  async sweepExpiredApprovals(): Promise<number> {
    if (this.#sweeping) return 0;
    this.#sweeping = true;
    try {
      const runs = await this.deps.runStore.listRecent({ limit: SWEEP_SCAN });
      let expired = 0;
      for (const run of runs) {
        if (run.state === 'awaiting_approval' && this.#isExpired(run) && (await this.#expire(run)))
          expired += 1;
      }
      return expired;
    } finally {
      this.#sweeping = false;
    }
  }

  #isExpired(run: RunRecord): boolean {
    return run.approvalExpiresAt !== undefined && Date.parse(run.approvalExpiresAt) <= this.#now();
  }

  async #expire(run: RunRecord): Promise<boolean> {
    const moved = await this.deps.runStore.transition(run.runId, ['awaiting_approval'], 'expired', {
      finishedAt: this.#nowIso(),
    });
    if (!moved.ok) return false;
    await this.#audit({ runId: run.runId, cluster: run.cluster, actor: 'system', action: 'expired' });
    this.#updateRoot(moved.record);
    return true;
  }

  // -------------------------------------------------------------------------------------------
  // Helpers

  #updateRoot(run: RunRecord): void {
    if (run.messageTs) this.writer.channel(run.channel).message(run.messageTs).update(rootMessage(run));
  }

  #notice(run: RunRecord, icon: string, userId: string, text: string): void {
    if (!run.messageTs) return;
    this.writer
      .channel(run.channel)
      .post(actorNotice(icon, userId, text, this.#nowIso()), { threadTs: run.messageTs });
  }

  async #audit(entry: Omit<AuditEntry, 'at'>): Promise<void> {
    try {
      await this.deps.audit.append(entry);
    } catch (error) {
      this.deps.logger.error({ entry, error: describeError(error) }, 'audit append failed');
    }
  }

  /** An ephemeral answer through the response_url; never throws, never waits more than 10 s. */
  async #reply(respond: RespondFn, message: EphemeralMessage, replaceOriginal?: boolean): Promise<void> {
    const body: RespondArguments = {
      ...message,
      ...(replaceOriginal === undefined ? {} : { replace_original: replaceOriginal }),
    };
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        respond(body),
        new Promise((_, reject) => {
          timer = setTimeout(
            () => reject(new Error('response_url did not answer in time')),
            RESPOND_TIMEOUT_MS,
          );
        }),
      ]);
    } catch (error) {
      this.deps.logger.warn({ error: describeError(error) }, 'could not answer through response_url');
    } finally {
      clearTimeout(timer);
    }
  }

  /** Slow work after the ack: an unexpected failure still gets the user an answer. */
  async #guarded(respond: RespondFn, work: () => Promise<void>): Promise<void> {
    try {
      await work();
    } catch (error) {
      this.deps.logger.error({ error: describeError(error) }, 'Slack request failed');
      await this.#reply(respond, refusalMessage(`Something went wrong: ${describeError(error)}`), false);
    }
  }

  #now(): number {
    return this.deps.now?.() ?? Date.now();
  }

  #nowIso(): string {
    return new Date(this.#now()).toISOString();
  }
}

type Refuse = (reason: string, run?: RunRecord) => Promise<void>;

function approvalMinutes(run: RunRecord): number {
  if (!run.approvalExpiresAt) return 0;
  return Math.round((Date.parse(run.approvalExpiresAt) - Date.parse(run.createdAt)) / 60_000);
}

/** Why a button no longer applies, from the run's current state. */
function stateRefusal(run: RunRecord, action: RunActionId): string {
  switch (run.state) {
    case 'approved':
    case 'running':
    case 'paused':
      return action === 'approve' || action === 'cancel'
        ? `Already approved${run.approvedBy ? ` by <@${run.approvedBy}>` : ''}.`
        : `The run is ${run.state}: nothing to ${action}.`;
    case 'cancelled':
      return 'This run was cancelled.';
    case 'expired':
      return `This approval expired after ${approvalMinutes(run)} min. Request the run again.`;
    case 'dry_run':
      return 'This was a dry run: nothing to approve. Run the command again with `--exec`.';
    default:
      return `The run is ${run.state.replace(/_/g, ' ')}: nothing to ${action}.`;
  }
}
