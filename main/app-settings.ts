/**
 * The desktop app's own settings (start at login; off unless the person turns it on), kept as a
 * small JSON file in Electron's userData folder. Reading never throws: a missing or broken file
 * means the defaults.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { AppSettingsSchema, type AppSettings } from '../src/common/console-api.js';

export const DEFAULT_SETTINGS: AppSettings = { openAtLogin: false };

export function readAppSettings(file: string): AppSettings {
  try {
    const parsed = AppSettingsSchema.safeParse(JSON.parse(readFileSync(file, 'utf8')));
    return parsed.success ? parsed.data : { ...DEFAULT_SETTINGS };
  } catch {
    return { ...DEFAULT_SETTINGS };
  }
}

export function writeAppSettings(file: string, settings: AppSettings): void {
  const temp = `${file}.${process.pid}.tmp`;
  writeFileSync(temp, JSON.stringify(settings, null, 2) + '\n', { mode: 0o600 });
  renameSync(temp, file);
}
