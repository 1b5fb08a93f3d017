/**
 * The tray icon and its menu, driven by tray-presenter.ts. Written against a small structural interface of Electron's
 * Tray / Menu / nativeImage (index.ts passes the real ones), so the unit tests drive it with a fake.
 */
import type { Status } from '../../shared/contract';
import { presentStarting, presentTray, type DotTone, type TrayAction, type TrayIconVariant, type TrayView } from './tray-presenter';

/** One item of an Electron menu template (a subset of MenuItemConstructorOptions). */
export interface MenuTemplateItem {
  id?: string;
  type?: 'normal' | 'separator';
  label?: string;
  enabled?: boolean;
  icon?: unknown;
  click?: () => void;
}

export interface TrayLike {
  setImage(image: never): void;
  setToolTip(text: string): void;
  setContextMenu(menu: never): void;
  on(event: 'click', listener: () => void): unknown;
  destroy(): void;
}

export interface TrayPlatform {
  createTray(image: unknown): TrayLike;
  buildMenu(template: MenuTemplateItem[]): unknown;
  /** The tray icon for a variant (macOS: template images, so the OS tints them for light and dark menu bars). */
  icon(variant: TrayIconVariant): unknown;
  /** A small coloured dot for a server's menu item; undefined where menus cannot show icons well. */
  dot(tone: DotTone): unknown;
}

export class TrayController {
  private readonly tray: TrayLike;
  private shown = '';
  private current: TrayView;

  constructor(
    private readonly platform: TrayPlatform,
    private readonly onAction: (action: TrayAction) => void,
    onClick: () => void,
  ) {
    this.current = presentStarting();
    this.tray = platform.createTray(platform.icon(this.current.icon));
    this.tray.on('click', onClick);
    this.render(this.current);
  }

  /** The view the tray shows now (for tests and diagnostics). */
  get view(): TrayView {
    return this.current;
  }

  update(status: Status): void {
    this.render(presentTray(status));
  }

  destroy(): void {
    this.tray.destroy();
  }

  private render(view: TrayView): void {
    // Status is pushed often (token events); rebuilding an identical menu would flicker an open menu on some platforms.
    const key = JSON.stringify(view);
    if (key === this.shown) return;
    const previousIcon = this.shown === '' ? undefined : this.current.icon;
    this.shown = key;
    this.current = view;
    if (previousIcon !== view.icon) this.tray.setImage(this.platform.icon(view.icon) as never);
    this.tray.setToolTip(view.tooltip);
    this.tray.setContextMenu(this.platform.buildMenu(this.template(view)) as never);
  }

  private template(view: TrayView): MenuTemplateItem[] {
    return view.items.map((item): MenuTemplateItem => {
      if (item.type === 'separator') return { type: 'separator' };
      const entry: MenuTemplateItem = { id: item.id, type: 'normal', label: item.label, enabled: item.enabled };
      if (item.dot !== undefined) {
        const icon = this.platform.dot(item.dot);
        if (icon !== undefined) entry.icon = icon;
      }
      const action = item.action;
      if (action !== undefined) entry.click = () => this.onAction(action);
      return entry;
    });
  }
}
