// The renderer's TypeScript project (renderer/tsconfig.json: DOM libs, no Node types) has no
// sources until the console arrives with the desktop app issue; this file gives it one input so
// `tsc -b` has something to check. It declares nothing. When the console lands, its ambient
// declarations (such as the preload API on `window`) go here.
