export type WarningType = 'FCW' | 'ICW' | 'EBW' | 'RLVW' | 'GLOSA';
export const WARNING_TYPES: readonly WarningType[] = ['FCW', 'ICW', 'EBW', 'RLVW', 'GLOSA'];
export type Severity = 'advisory' | 'warning' | 'critical';

/** A risk found by an application. `vehicles[0]` is the one that must act. */
export interface Warning {
  id: string;
  type: WarningType;
  severity: Severity;
  vehicles: string[];
  /** Time to collision (FCW, EBW), to the conflict point (ICW, the later vehicle) or the stop line (RLVW). */
  ttcS: number | null;
  /** ICW: difference between the two vehicles' arrival times at the conflict point. */
  timeGapS: number | null;
  /** Gap (bumper to bumper, FCW/EBW) or distance to the stop line (RLVW, GLOSA), metres. */
  distanceM: number | null;
  /** GLOSA: advised speed (m/s). */
  advisedSpeedMs?: number;
  /** RLVW, GLOSA: intersection id and phase. */
  intersection?: number;
  phase?: number;
  /** ms since the epoch. */
  at: number;
  /** The message that triggered it. */
  trigger: { type: 'bsm'; vehicle: string; msgCnt: number; secMark: number };
}

/** Internal: the warning plus when its trigger was taken in (performance.now()). */
export interface RaisedWarning {
  warning: Warning;
  intakeAt: number;
}
