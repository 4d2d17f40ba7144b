// Admission: how many sandboxes may be live at once, in all and per client address. It only counts;
// it never creates or ends anything. A slot is taken synchronously (so two logins in the same instant
// cannot both pass a limit of 1) and given back exactly once, when its session's close has completed.
import { WargateError } from '../errors/catalog.js';
import { sourceKey } from '../ssh/source-address.js';

export interface AdmissionLimits {
  maxSandboxes: number;
  maxPerAddress: number;
}

/** No limits: what a SessionManager enforces when the composition root gives it none. */
export const UNLIMITED: AdmissionLimits = { maxSandboxes: Infinity, maxPerAddress: Infinity };

/** Gives the slot back; calling it again does nothing. */
export type Release = () => void;

/**
 * How a client address is counted: "::ffff:192.0.2.7" (an IPv4 client of a dual-stack listener) as
 * "192.0.2.7", an IPv6 address by its /64 (one host routinely holds a whole /64).
 */
export const addressKey = sourceKey;

/** The config settings a refusal names, for the operator's log. */
export interface AdmissionSettings {
  total: string;
  perAddress: string;
}

export class Admission {
  private total = 0;
  private readonly perAddress = new Map<string, number>();

  constructor(
    private readonly limits: AdmissionLimits,
    private readonly settings: AdmissionSettings = { total: 'admission.maxSandboxes', perAddress: 'admission.maxPerAddress' },
  ) {}

  /**
   * Takes a slot for one sandbox of `address`, or throws WG_ERR_TOO_MANY_SANDBOXES /
   * WG_ERR_TOO_MANY_FROM_ADDRESS (the operator message says which limit, and its value).
   */
  admit(address: string): Release {
    const key = addressKey(address);
    const fromAddress = this.perAddress.get(key) ?? 0;
    if (this.total >= this.limits.maxSandboxes) {
      throw new WargateError('WG_ERR_TOO_MANY_SANDBOXES', `${this.total} live sandboxes, ${this.settings.total} is ${this.limits.maxSandboxes}`);
    }
    if (fromAddress >= this.limits.maxPerAddress) {
      throw new WargateError('WG_ERR_TOO_MANY_FROM_ADDRESS', `${key} holds ${fromAddress} sandboxes, ${this.settings.perAddress} is ${this.limits.maxPerAddress}`);
    }
    this.total++;
    this.perAddress.set(key, fromAddress + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.total--;
      const left = this.perAddress.get(key)! - 1;
      if (left === 0) this.perAddress.delete(key);
      else this.perAddress.set(key, left);
    };
  }

  /** Live slots: in all, and of one address. */
  count(address?: string): number {
    return address === undefined ? this.total : (this.perAddress.get(addressKey(address)) ?? 0);
  }

  /** Addresses that hold at least one slot (a map entry never outlives its last slot). */
  get addresses(): number {
    return this.perAddress.size;
  }
}
