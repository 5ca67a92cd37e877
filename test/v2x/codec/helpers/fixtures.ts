import type { BasicSafetyMessage } from '../../../../src/v2x/codec/types.js';

/** A minimal BSM: every OPTIONAL component absent, no extensions. */
export const MIN_BSM: BasicSafetyMessage = {
  msgCnt: 1,
  id: '0102030405060708',
  secMark: 1000,
  pos: { lat: 399000000, long: 1163000000 },
  transmission: 'forwardGears',
  speed: 500,
  heading: 7200,
  accelSet: { long: 0, lat: 0, vert: 0, yaw: 0 },
  brakes: {},
  size: { width: 180, length: 480 },
  vehicleClass: { classification: 10 },
};

/** Its encoding: the same bytes asn1c 0.9.28 (-ixer -oper) produces for its XER. */
export const MIN_BSM_HEX = '00002020406080a0c0e1007d09ada55816137957e83e87081f41f41fdfffc00b41e00280';

/** Bits before the padding (vectors.test.ts derives them field by field). */
export const MIN_BSM_BITS = 282;

/** The bit of VehicleClassification's extension marker (then fuelType's presence bit, 8 bits). */
export const MIN_BSM_VC_EXT_BIT = MIN_BSM_BITS - 10;
