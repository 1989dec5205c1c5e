/**
 * The lab's XAPI: what each host's XML-RPC server answers. Only the pool master serves the API;
 * the other hosts answer HOST_IS_SLAVE with the master's address, as real supporters do. Sessions
 * and tasks live only in the master's memory, so a master reboot invalidates them all.
 */
import { randomUUID } from 'node:crypto';
import type { LabHost, PoolModel } from './pool-model.js';
import {
  hostMetricsRecord,
  hostRecord,
  type LabTask,
  poolRecord,
  srRecord,
  taskRecord,
  vbdRecord,
  vdiRecord,
  vmRecord,
  type XapiRecord,
} from './xapi-records.js';
import { XapiFault, type XmlRpcHandler, xmlRpcValueFragment } from './xmlrpc-server.js';

interface ClassTable {
  all(): Array<[string, XapiRecord]>;
}

/** Methods that change nothing; every other call is logged as mutating, so tests can find them. */
export function isLabReadOnlyMethod(method: string): boolean {
  const name = method.replace(/^Async\./, '').split('.')[1] ?? '';
  return (
    name.startsWith('get_') ||
    name.startsWith('compute_') ||
    name.startsWith('assert_') ||
    name === 'login_with_password' ||
    name === 'logout' ||
    name === 'listMethods'
  );
}

export class LabXapi {
  readonly #sessions = new Map<string, { username: string; since: number }>();
  readonly #tasks = new Map<string, LabTask>();
  readonly #classes: Record<string, ClassTable>;

  constructor(
    readonly model: PoolModel,
    readonly credentials: { username: string; password: string },
  ) {
    this.#classes = {
      pool: { all: () => [[model.pool.ref, poolRecord(model)]] },
      host: { all: () => model.hosts.map((h) => [h.ref, hostRecord(model, h)]) },
      host_metrics: { all: () => model.hosts.map((h) => [h.metricsRef, hostMetricsRecord(model, h)]) },
      VM: { all: () => [...model.vms.values()].map((vm) => [vm.ref, vmRecord(vm)]) },
      SR: { all: () => [...model.srs.values()].map((sr) => [sr.ref, srRecord(model, sr)]) },
      VDI: { all: () => [...model.vdis.values()].map((vdi) => [vdi.ref, vdiRecord(model, vdi)]) },
      VBD: { all: () => [...model.vbds.values()].map((vbd) => [vbd.ref, vbdRecord(vbd)]) },
      task: { all: () => [...this.#tasks.values()].map((t) => [t.ref, taskRecord(t)]) },
    };
    model.onPowerChange((host, power) => {
      if (host.ref === model.pool.master && power === 'down')
        this.#forgetSessionsAndTasks('master went down');
    });
  }

  /** The XML-RPC handler for the server listening on `host`'s address. */
  handlerFor(host: LabHost): XmlRpcHandler {
    return (method, params) => this.#handle(host, method, params);
  }

  /** Fault injection: every session becomes invalid (as after a toolstack restart). */
  expireSessions(): void {
    this.#forgetSessionsAndTasks('sessions expired (fault)');
  }

  sessionCount(): number {
    return this.#sessions.size;
  }

  #forgetSessionsAndTasks(reason: string): void {
    this.#sessions.clear();
    this.#tasks.clear();
    this.model.log.record({ kind: 'xapi.sessions_invalidated', detail: { reason } });
  }

  async #handle(host: LabHost, method: string, params: unknown[]): Promise<unknown> {
    this.model.log.record({
      kind: 'xapi.call',
      host: host.name,
      detail: { method, readOnly: isLabReadOnlyMethod(method) },
    });
    if (method === 'system.listMethods') return Object.keys(this.#classes).map((c) => `${c}.get_all_records`);
    const master = this.model.masterHost();
    if (host.ref !== master.ref) throw new XapiFault(['HOST_IS_SLAVE', master.address]);
    if (Date.now() - host.xapiStartedAt < this.model.timings.xapiWarmupMs)
      throw new XapiFault(['HOST_STILL_BOOTING']);

    if (method === 'session.login_with_password') return this.#login(params);
    const session = String(params[0] ?? '');
    if (!this.#sessions.has(session)) throw new XapiFault(['SESSION_INVALID', session]);
    if (method === 'session.logout') {
      this.#sessions.delete(session);
      return undefined;
    }
    const args = params.slice(1);
    if (method.startsWith('Async.')) return this.#startTask(host, method.slice('Async.'.length), args);
    return this.#dispatch(method, args, undefined);
  }

  #login(params: unknown[]): string {
    const [username, password] = params;
    if (params.length < 2 || params.length > 4) {
      throw new XapiFault([
        'MESSAGE_PARAMETER_COUNT_MISMATCH',
        'session.login_with_password',
        '2',
        String(params.length),
      ]);
    }
    if (username !== this.credentials.username || password !== this.credentials.password) {
      throw new XapiFault(['SESSION_AUTHENTICATION_FAILED', String(username), 'Authentication failure']);
    }
    const session = `OpaqueRef:${randomUUID()}`;
    this.#sessions.set(session, { username: String(username), since: Date.now() });
    this.model.log.record({ kind: 'xapi.login', detail: { username } });
    return session;
  }

  #startTask(host: LabHost, method: string, args: unknown[]): string {
    const task: LabTask = {
      ref: `OpaqueRef:${randomUUID()}`,
      uuid: randomUUID(),
      name: `Async.${method}`,
      status: 'pending',
      progress: 0,
      created: new Date(),
      finished: new Date(0),
      result: '',
      errorInfo: [],
      residentOn: host.ref,
    };
    this.#tasks.set(task.ref, task);
    Promise.resolve()
      .then(() => this.#dispatch(method, args, task.ref))
      .then(
        (value) => {
          task.result = xmlRpcValueFragment(value);
          task.status = 'success';
        },
        (error: unknown) => {
          task.errorInfo =
            error instanceof XapiFault ? error.errorDescription : ['INTERNAL_ERROR', String(error)];
          task.status = task.errorInfo[0] === 'TASK_CANCELLED' ? 'cancelled' : 'failure';
        },
      )
      .finally(() => {
        task.progress = 1;
        task.finished = new Date();
      });
    return task.ref;
  }

  async #dispatch(method: string, args: unknown[], taskRef: string | undefined): Promise<unknown> {
    const [className = '', name = ''] = method.split('.');
    const model = this.model;
    const arity = (n: number) => {
      if (args.length !== n)
        throw new XapiFault([
          'MESSAGE_PARAMETER_COUNT_MISMATCH',
          method,
          String(n + 1),
          String(args.length + 1),
        ]);
    };
    const hostArg = () => {
      const host = model.hostByRef(String(args[0]));
      if (!host) throw new XapiFault(['HANDLE_INVALID', 'host', String(args[0])]);
      return host;
    };

    switch (method) {
      case 'host.disable':
        if (args.length < 1 || args.length > 2) arity(1);
        return model.disableHost(hostArg().ref);
      case 'host.enable':
        arity(1);
        return model.enableHost(hostArg().ref);
      case 'host.reboot':
        arity(1);
        return model.rebootHost(hostArg().ref);
      case 'host.get_servertime':
        arity(1);
        hostArg();
        return new Date(Math.floor(Date.now() / 1000) * 1000);
      case 'host.compute_free_memory':
        arity(1);
        return String(model.freeMemory(hostArg().ref));
      case 'host.compute_memory_overhead':
        arity(1);
        hostArg();
        return '0';
      case 'host.get_vms_which_prevent_evacuation':
        arity(1);
        return Object.fromEntries(model.vmsWhichPreventEvacuation(hostArg().ref));
      case 'host.assert_can_evacuate': {
        arity(1);
        const blockers = [...model.vmsWhichPreventEvacuation(hostArg().ref).values()];
        if (blockers.length > 0)
          throw new XapiFault(['CANNOT_EVACUATE_HOST', blockers.map((b) => b.join(',')).join('|')]);
        return undefined;
      }
      case 'pool.disable_ha':
        arity(0);
        return model.disableHa();
      case 'pool.enable_ha':
        arity(2);
        return model.enableHa(stringArray(args[0]), stringMap(args[1]));
      case 'pool.add_to_other_config': {
        arity(3);
        const key = String(args[1]);
        if (key in model.pool.otherConfig)
          throw new XapiFault(['MAP_DUPLICATE_KEY', 'pool', 'other_config', model.pool.ref, key]);
        return model.setPoolOtherConfig(key, String(args[2]));
      }
      case 'pool.remove_from_other_config':
        arity(2);
        if (String(args[1]) in model.pool.otherConfig) model.setPoolOtherConfig(String(args[1]), undefined);
        return undefined;
      case 'VM.pool_migrate':
        arity(3);
        return model.migrateVm(String(args[0]), String(args[1]), taskRef ?? 'OpaqueRef:NULL');
      case 'task.cancel': {
        arity(1);
        const task = this.#tasks.get(String(args[0]));
        if (!task) throw new XapiFault(['HANDLE_INVALID', 'task', String(args[0])]);
        if (task.status === 'pending') task.status = 'cancelling';
        return undefined;
      }
      case 'task.destroy':
        arity(1);
        if (!this.#tasks.delete(String(args[0])))
          throw new XapiFault(['HANDLE_INVALID', 'task', String(args[0])]);
        return undefined;
    }

    const table = this.#classes[className];
    if (!table) throw new XapiFault(['MESSAGE_METHOD_UNKNOWN', method]);
    if (name === 'get_all') return table.all().map(([r]) => r);
    if (name === 'get_all_records') return Object.fromEntries(table.all());
    const record = (r: unknown) => {
      const found = table.all().find(([candidate]) => candidate === r);
      if (!found) throw new XapiFault(['HANDLE_INVALID', className, String(r)]);
      return found[1];
    };
    if (name === 'get_record') {
      arity(1);
      return record(args[0]);
    }
    if (name === 'get_by_uuid') {
      arity(1);
      const found = table.all().find(([, rec]) => rec.uuid === args[0]);
      if (!found) throw new XapiFault(['UUID_INVALID', className, String(args[0])]);
      return found[0];
    }
    if (name.startsWith('get_')) {
      arity(1);
      const rec = record(args[0]);
      const field = name.slice('get_'.length);
      if (!(field in rec)) throw new XapiFault(['MESSAGE_METHOD_UNKNOWN', method]);
      return rec[field];
    }
    throw new XapiFault(['MESSAGE_METHOD_UNKNOWN', method]);
  }
}

function stringArray(value: unknown): string[] {
  if (!Array.isArray(value)) throw new XapiFault(['FIELD_TYPE_ERROR', 'heartbeat_srs']);
  return value.map(String);
}

function stringMap(value: unknown): Record<string, string> {
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw new XapiFault(['FIELD_TYPE_ERROR', 'configuration']);
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, String(v)]));
}
