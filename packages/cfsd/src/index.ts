export * from './flags.js';
export { LayerCompactor, type LayerCompactorEvents } from './layer-compactor.js';
export * from './layer-indexer.js';
export * from './server.js';
export { ServingActivity } from './serving-activity.js';
export * from './session.js';
export * from './store/index.js';
