/**
 * Where a server's code lives, so that its sandbox can show it read-only without the profile
 * listing it: the program (`node`, `/opt/tools/bin/server`) and, for an interpreter, the script
 * that is its first argument. For each, the package it belongs to (the nearest directory with a
 * package.json), or the install prefix of a `bin/` directory, plus every `node_modules` directory
 * above it (Node looks for dependencies there). The system directories (/usr, /bin, ...) are
 * visible anyway. Never the home directory itself, or anything above it: a script lying in the
 * home grants only its own directory.
 */
import { accessSync, constants, existsSync, realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import { SYSTEM_ROOTS } from '../../core/sandbox/profile.js';

export interface CodeRootsInput {
  command: string;
  args: readonly string[];
  /** The PATH the server gets, to find a bare command name. */
  pathVariable?: string;
  cwd?: string;
  home?: string;
}

export function findCodeRoots(input: CodeRootsInput): string[] {
  const roots = new Set<string>();
  const program = resolveProgram(input.command, input.pathVariable, input.cwd);
  const scripts: string[] = [];
  if (program) scripts.push(program);
  const first = input.args[0];
  if (first !== undefined && path.isAbsolute(first) && isFile(first)) scripts.push(first);
  for (const file of scripts) {
    for (const variant of new Set([file, safeRealpath(file)])) {
      for (const root of rootsOf(variant, input.home)) roots.add(root);
    }
  }
  return [...roots];
}

/** A command as the kernel will find it: a path as given (against the working directory), or the first match on PATH. */
export function resolveProgram(command: string, pathVariable: string | undefined, cwd?: string): string | undefined {
  if (command.includes('/')) {
    const full = path.resolve(cwd ?? process.cwd(), command);
    return isFile(full) ? full : undefined;
  }
  for (const dir of (pathVariable ?? '').split(':')) {
    if (dir === '' || !path.isAbsolute(dir)) continue;
    const candidate = path.join(dir, command);
    if (isExecutableFile(candidate)) return candidate;
  }
  return undefined;
}

function rootsOf(file: string, home: string | undefined): string[] {
  if (SYSTEM_ROOTS.some((root) => file === root || file.startsWith(root + '/'))) return [];
  const dir = path.dirname(file);
  let root = nearestPackage(dir) ?? (path.basename(dir) === 'bin' ? path.dirname(dir) : dir);
  // A package.json in the home directory (or above it) must not open the whole home.
  if (root === '/' || (home !== undefined && isWithin(home, root))) root = dir;
  if (root === '/' || (home !== undefined && isWithin(home, root))) return [file];
  const roots = [root];
  for (let above = root; above !== '/'; above = path.dirname(above)) {
    if (path.basename(above) === 'node_modules') roots.push(above);
    const modules = path.join(above, 'node_modules');
    if (above !== root && !(home !== undefined && isWithin(home, above)) && existsSync(modules)) roots.push(modules);
  }
  return roots;
}

function nearestPackage(start: string): string | undefined {
  for (let dir = start; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    if (dir === '/' || dir === path.dirname(dir)) return undefined;
  }
}

function isWithin(child: string, parent: string): boolean {
  return parent === '/' || child === parent || child.startsWith(parent + '/');
}

function isFile(file: string): boolean {
  try {
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

function isExecutableFile(file: string): boolean {
  if (!isFile(file)) return false;
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function safeRealpath(file: string): string {
  try {
    return realpathSync(file);
  } catch {
    return file;
  }
}
