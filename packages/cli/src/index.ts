export * from './command.js';
export * from './duration.js';
export * from './flag.js';
export * from './help.js';
export * from './parse.js';
export * from './reference.js';
