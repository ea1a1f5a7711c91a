// The wire contract (PROTOCOL.md) as one pure part: topics, inbound schemas and decoders, the §9
// envelope. No file, clock or config access, so the agent, signagectl and a fleet service can share it.
export * from './topics.js';
export * from './schemas.js';
export * from './decode.js';
export * from './envelope.js';
