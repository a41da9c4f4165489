/**
 * The package's main entry (`import { Gateway } from 'telemetry-gateway'`): a gateway embedded in
 * another program. Devices use the `telemetry-gateway/sdk` entry instead, which loads no server code.
 */
export { Gateway, type GatewayDeps } from './gateway.js';
export { defaultConfig, parseConfig, type GatewayConfig } from './config.js';
export { ApiError, ConfigError, GatewayError } from './errors.js';
export { createLogger } from './log.js';
