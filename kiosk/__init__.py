"""The 数字巴陵 kiosk: a touchscreen web app the kiosk serves itself."""
