import { connect, headers as natsHeaders } from '@nats-io/transport-node';
import { createNatsRequestReply } from '../../src/adapters/nats/request.js';
import { NATS_URL, natsAvailable, runPrefix } from '../helpers/nats.js';
import { requestConformance } from '../ports/request.conformance.js';

const { skip } = await natsAvailable();
const prefix = runPrefix();

requestConformance(
  'nats',
  {
    make: () => createNatsRequestReply({ url: NATS_URL }),
    subject: (name) => `${prefix}.${name}`,
    async responder(subject, fn) {
      const nc = await connect({ servers: NATS_URL });
      nc.subscribe(subject, {
        callback: (_err, msg) => void answer(msg),
      });
      const answer = async (msg: import('@nats-io/transport-node').Msg) => {
        const hs: Record<string, string> = {};
        if (msg.headers) for (const [k] of msg.headers) hs[k] = msg.headers.get(k);
        const out = fn(msg.data, hs);
        if (out.delayMs) await new Promise((r) => setTimeout(r, out.delayMs));
        const h = natsHeaders();
        for (const [k, v] of Object.entries(out.headers ?? {})) h.set(k, v);
        msg.respond(out.data, { headers: h });
      };
      await nc.flush();
      return () => nc.drain();
    },
  },
  { skip },
);
