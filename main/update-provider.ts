/**
 * electron-updater's view of the organisation's feed: a custom provider that answers only with the
 * manifest main/updates.ts verified (signed by a trusted key, newer, allowed by the managed policy),
 * so electron-updater never reads a feed file of its own. Its downloads still go through its own
 * client (Electron's net, with its sha512 check of the file), and main.ts checks the file once more
 * against the signed manifest before offering to install it.
 */
import type { UpdateInfo } from 'builder-util-runtime';
import { Provider } from 'electron-updater';
import type { ProviderRuntimeOptions } from 'electron-updater/out/providers/Provider.js';
import { resolveFiles } from 'electron-updater/out/providers/Provider.js';
import type { ResolvedUpdateFileInfo } from 'electron-updater/out/types.js';
import type { UpdateGate } from './updates.js';

/** The publish options main.ts passes to `setFeedURL({ provider: 'custom', updateProvider: VerifiedFeedProvider, gate })`. */
export interface VerifiedFeedOptions {
  provider: 'custom';
  gate: UpdateGate;
}

export class VerifiedFeedProvider extends Provider<UpdateInfo> {
  private readonly gate: UpdateGate;

  constructor(options: VerifiedFeedOptions, _updater: unknown, runtimeOptions: ProviderRuntimeOptions) {
    super(runtimeOptions);
    this.gate = options.gate;
  }

  /** The verified manifest; without one (no check yet, or the last one refused or held), there is nothing to offer. */
  async getLatestVersion(): Promise<UpdateInfo> {
    const verified = this.gate.verifiedInfo();
    if (!verified) throw new Error('no verified update: the last check of the feed refused it, held it back, or found nothing newer');
    return verified.info as unknown as UpdateInfo;
  }

  resolveFiles(updateInfo: UpdateInfo): ResolvedUpdateFileInfo[] {
    const verified = this.gate.verifiedInfo();
    if (!verified) throw new Error('no verified update to download');
    return resolveFiles(updateInfo, verified.channelUrl);
  }
}
