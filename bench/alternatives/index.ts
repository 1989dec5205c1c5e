/** Every planner the benchmark compares, ours first. */
import { planRollingReboot } from '../../src/engine/planner.js';
import { cloudstackRandomPlanner } from './cloudstack-random.js';
import type { Planner } from './rolling.js';
import { seedGreedyPlanner } from './seed-greedy.js';
import { xapiBinpackPlanner } from './xapi-binpack.js';
import { xenOrchestraPlanner } from './xen-orchestra.js';

export const ourPlanner: Planner = {
  key: 'ours',
  name: 'ours (planRollingReboot)',
  plan: (snapshot) => {
    const result = planRollingReboot(snapshot);
    if (result.ok) return { ok: true, plan: result.plan };
    const { refusal } = result;
    return { ok: false, hostName: 'hostName' in refusal ? refusal.hostName : '', message: refusal.message };
  },
};

export const PLANNERS: readonly Planner[] = [
  ourPlanner,
  seedGreedyPlanner,
  xapiBinpackPlanner,
  cloudstackRandomPlanner,
  xenOrchestraPlanner,
];

export type { AlternativeResult, Planner } from './rolling.js';
