import type { ProductDetails } from '../contracts/catalog-events.js';

/** A small catalogue so the product search has something to find. Prices in whole currency units. */
export const PRODUCT_SEED: ReadonlyArray<{ readonly sku: string } & ProductDetails> = [
  { sku: 'KB-MECH-87', name: 'Mechanical Keyboard', category: 'keyboards', price: 89, description: 'Tenkeyless mechanical keyboard with tactile brown switches and PBT keycaps.' },
  { sku: 'KB-LOW-01', name: 'Low-Profile Wireless Keyboard', category: 'keyboards', price: 59, description: 'Slim scissor-switch keyboard that pairs with three devices over Bluetooth.' },
  { sku: 'KB-REST-02', name: 'Foam Wrist Rest', category: 'accessories', price: 19, description: 'Memory-foam wrist rest sized for a full keyboard; keeps wrists level while typing.' },
  { sku: 'KB-CAPS-03', name: 'PBT Keycap Set', category: 'accessories', price: 39, description: 'Doubleshot keycaps for mechanical switches, cherry profile, 129 keys.' },
  { sku: 'MS-ERGO-10', name: 'Ergonomic Vertical Mouse', category: 'mice', price: 45, description: 'Vertical grip that keeps the forearm in a handshake position; six buttons.' },
  { sku: 'MS-GAME-11', name: 'Lightweight Gaming Mouse', category: 'mice', price: 69, description: 'A 58 g mouse with an optical sensor and braided cable, built for fast aim.' },
  { sku: 'MS-PAD-12', name: 'Extended Desk Mat', category: 'accessories', price: 25, description: 'Cloth desk mat large enough for keyboard and mouse, stitched edges.' },
  { sku: 'MN-4K-27', name: '27-inch 4K Monitor', category: 'monitors', price: 329, description: 'IPS panel, USB-C with 90 W power delivery, factory calibrated colour.' },
  { sku: 'MN-UW-34', name: 'Ultrawide Curved Monitor', category: 'monitors', price: 449, description: '34-inch curved display at 144 Hz for games and side-by-side spreadsheets.' },
  { sku: 'MN-ARM-02', name: 'Dual Monitor Arm', category: 'accessories', price: 79, description: 'Gas-spring arm holding two monitors up to 32 inches, clamps to the desk.' },
  { sku: 'CB-USBC-1M', name: 'USB-C Cable 1 m', category: 'cables', price: 9, description: 'Braided USB-C to USB-C cable, 100 W charging and 10 Gbps data.' },
  { sku: 'CB-HDMI-2M', name: 'HDMI 2.1 Cable', category: 'cables', price: 15, description: 'Two-metre cable for 4K at 120 Hz and 8K at 60 Hz.' },
  { sku: 'HB-USBC-7', name: 'USB-C Hub', category: 'adapters', price: 49, description: 'Seven ports: HDMI, Ethernet, SD card reader and three USB-A, with pass-through charging.' },
  { sku: 'AU-HEAD-20', name: 'Noise-Cancelling Headphones', category: 'audio', price: 199, description: 'Over-ear headphones with active noise cancelling and 30 hours of battery.' },
  { sku: 'AU-MIC-21', name: 'USB Condenser Microphone', category: 'audio', price: 99, description: 'Cardioid microphone for calls, podcasts and streaming, with a desk stand.' },
  { sku: 'AU-SPK-22', name: 'Desktop Speakers', category: 'audio', price: 129, description: 'A pair of powered bookshelf speakers with Bluetooth and optical input.' },
  { sku: 'CM-WEB-30', name: '1080p Webcam', category: 'video', price: 59, description: 'Full HD webcam with autofocus and two microphones for video calls.' },
  { sku: 'LT-DESK-40', name: 'LED Desk Lamp', category: 'lighting', price: 35, description: 'Dimmable lamp with adjustable colour temperature and a USB charging port.' },
  { sku: 'ST-SSD-1T', name: 'Portable SSD 1 TB', category: 'storage', price: 109, description: 'Pocket solid-state drive, 1050 MB/s over USB-C, shock resistant.' },
  { sku: 'CH-TASK-50', name: 'Ergonomic Office Chair', category: 'furniture', price: 289, description: 'Mesh back, adjustable lumbar support and 4D armrests for long working days.' },
];
