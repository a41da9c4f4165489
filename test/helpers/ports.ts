/** A TCP port on 127.0.0.1 that was free a moment ago (for servers that must come back on the same port). */
export { freePort } from '../../simulator/services/index.js';
