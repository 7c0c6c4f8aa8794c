"""Tillsyn native-format PIR sensor for an ESP32 running MicroPython (umqtt.simple).

Wiring: PIR output (e.g. HC-SR501 or AM312) to GPIO 27, battery divider (2 x 100 kOhm) to
GPIO 34. Publishes to tillsyn/v1/<site>/<device_id>/event on motion changes and a heartbeat
with battery every 5 minutes, QoS 1, with a retained last will on .../state saying offline.
Time comes from NTP: the gateway requires ts, so the board
waits for NTP before publishing. Copy it to the board as main.py with a config.py holding
WIFI_SSID, WIFI_PASSWORD, BROKER, PORT, MQTT_USER, MQTT_PASSWORD, SITE, DEVICE_ID.
"""

import json
import time

import machine
import network
import ntptime
from umqtt.simple import MQTTClient

import config

EPOCH_OFFSET_MS = 946684800000  # MicroPython's epoch is 2000-01-01 on the ESP32
HEARTBEAT_S = 300
BASE = "tillsyn/v1/%s/%s" % (config.SITE, config.DEVICE_ID)

pir = machine.Pin(27, machine.Pin.IN)
adc = machine.ADC(machine.Pin(34))
adc.atten(machine.ADC.ATTN_11DB)
pending = []


def now_ms():
    return time.time() * 1000 + EPOCH_OFFSET_MS


def battery_percent():
    volts = adc.read_uv() * 2 / 1_000_000  # divider halves the cell voltage
    return max(0, min(100, round((volts - 3.3) / (4.2 - 3.3) * 100)))


def on_pir(pin):
    pending.append((now_ms(), pin.value() == 1))


def connect():
    wlan = network.WLAN(network.STA_IF)
    wlan.active(True)
    if not wlan.isconnected():
        wlan.connect(config.WIFI_SSID, config.WIFI_PASSWORD)
        while not wlan.isconnected():
            time.sleep_ms(200)
    while True:
        try:
            ntptime.settime()
            break
        except OSError:
            time.sleep(2)
    client = MQTTClient(config.DEVICE_ID, config.BROKER, port=config.PORT,
                        user=config.MQTT_USER, password=config.MQTT_PASSWORD, keepalive=60)
    client.set_last_will(BASE + "/state", json.dumps(
        {"ts": now_ms(), "kind": "availability", "value": "offline"}), retain=True, qos=1)
    client.connect(clean_session=False)
    client.publish(BASE + "/state", json.dumps(
        {"ts": now_ms(), "kind": "availability", "value": "online"}), retain=True, qos=1)
    return client


def main():
    client = connect()
    pir.irq(trigger=machine.Pin.IRQ_RISING | machine.Pin.IRQ_FALLING, handler=on_pir)
    last_beat = 0
    while True:
        try:
            while pending:
                ts, motion = pending.pop(0)
                client.publish(BASE + "/event", json.dumps(
                    {"ts": ts, "kind": "motion", "value": motion}), qos=1)
            if time.time() - last_beat >= HEARTBEAT_S:
                client.publish(BASE + "/heartbeat", json.dumps(
                    {"ts": now_ms(), "kind": "heartbeat", "value": None,
                     "battery": battery_percent()}), qos=1)
                last_beat = time.time()
            client.check_msg()
            time.sleep_ms(50)
        except OSError:
            time.sleep(5)
            client = connect()


main()
