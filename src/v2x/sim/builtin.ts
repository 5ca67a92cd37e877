import type { Scenario } from './scenario.js';
import { scenarioSchema } from './scenario.js';
import ebwHardBrake from './scenarios/ebw-hard-brake.json' with { type: 'json' };
import fcwSlowerLead from './scenarios/fcw-slower-lead.json' with { type: 'json' };
import fcwStoppedLead from './scenarios/fcw-stopped-lead.json' with { type: 'json' };
import glosaRed from './scenarios/glosa-red.json' with { type: 'json' };
import icwCrossing from './scenarios/icw-crossing.json' with { type: 'json' };
import nearBrakeNextLane from './scenarios/near-brake-next-lane.json' with { type: 'json' };
import nearCrossingLargeGap from './scenarios/near-crossing-large-gap.json' with { type: 'json' };
import nearGreenPass from './scenarios/near-green-pass.json' with { type: 'json' };
import nearOppositeDirections from './scenarios/near-opposite-directions.json' with { type: 'json' };
import nearParallelLanes from './scenarios/near-parallel-lanes.json' with { type: 'json' };
import nearVehicleBehind from './scenarios/near-vehicle-behind.json' with { type: 'json' };
import rlvwRed from './scenarios/rlvw-red.json' with { type: 'json' };

/**
 * The scripted scenarios shipped with Kapok (src/v2x/sim/scenarios/*.json): five that must raise
 * each warning type and seven near misses that must stay silent. Bundled into the build, so
 * `kapok v2x simulate` has ground truth to score without a --scenario path.
 */
const RAW: readonly unknown[] = [
  ebwHardBrake,
  fcwSlowerLead,
  fcwStoppedLead,
  glosaRed,
  icwCrossing,
  nearBrakeNextLane,
  nearCrossingLargeGap,
  nearGreenPass,
  nearOppositeDirections,
  nearParallelLanes,
  nearVehicleBehind,
  rlvwRed,
];

export function builtinScenarios(): Scenario[] {
  return RAW.map((s) => scenarioSchema.parse(s));
}
