// The wire contract (PROTOCOL.md) as one pure part: topics, inbound schemas and decoders, the §9
// envelope, outbound shapes and their encoders, and the topic → payload map. No file, clock or
// config access, so the agent, signagectl and a fleet service can share it.
export * from './topics.js';
export * from './schemas.js';
export * from './decode.js';
export * from './envelope.js';
export * from './outbound.js';
export * from './encode.js';
export * from './trust.js';
