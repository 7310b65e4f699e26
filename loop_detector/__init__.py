"""The detector node: loop and microwave cards over Modbus RTU, lane counts out."""
